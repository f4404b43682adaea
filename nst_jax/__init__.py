"""nst_jax: neural style transfer as pure JAX functions.

Public API:
  vgg19_params, vgg19_features    -- the pure-function VGG-19 with ported ImageNet weights
  NSTError                        -- the one exception type for errors a user can cause
"""

from .errors import NSTError
from .vgg import LAYERS, vgg19_features, vgg19_params

__version__ = "0.1.0"
__all__ = ["LAYERS", "NSTError", "vgg19_features", "vgg19_params", "__version__"]
