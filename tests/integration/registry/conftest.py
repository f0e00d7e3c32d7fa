from tests.integration.registry.fixtures import basin_serving, gs_serving, s3_serving, store_url

__all__ = ["basin_serving", "gs_serving", "s3_serving", "store_url"]
