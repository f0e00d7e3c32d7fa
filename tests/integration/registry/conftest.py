from tests.integration.registry.fixtures import gs_serving, s3_serving, store_url

__all__ = ["gs_serving", "s3_serving", "store_url"]
