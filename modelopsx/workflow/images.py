"""Container images the KFP components run in; one setting each (modelopsx.settings), so the images work and
the pipelines agree."""

from modelopsx.settings import DEFAULT_IMAGE, MODELOPSX_GPU_IMAGE, MODELOPSX_IMAGE

__all__ = ["DEFAULT_IMAGE", "MODELOPSX_GPU_IMAGE", "MODELOPSX_IMAGE"]
