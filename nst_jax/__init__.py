"""nst_jax: neural style transfer as pure JAX functions.

Public API:
  vgg19_params, vgg19_features    -- the pure-function VGG-19 with ported ImageNet weights
  stylize                         -- Gatys et al.: optimise pixels (L-BFGS or Adam), NumPy in and out
  stylize_many, Picture           -- many pictures, each its own problem, batches in one compiled program
  gram_matrix, content_loss, style_loss, total_variation -- the losses (nst_jax.losses)
  StyleLoss, STYLE_LOSSES         -- style representations as plug-ins (nst_jax.style)
  ContentLoss, CONTENT_LOSSES     -- content representations as plug-ins (nst_jax.content)
  load_image, save_image          -- image I/O (float32 RGB in [0, 1])
  enable_compilation_cache        -- the persistent XLA compilation cache
  NSTError                        -- the one exception type for errors a user can cause
"""

from .compile_cache import enable_compilation_cache
from .content import CONTENT_LOSSES, ContentLoss
from .errors import NSTError
from .gatys import Picture, StylizeInterrupted, gatys_loss, stylize, stylize_many
from .image import load_image, save_image
from .losses import content_loss, gram_matrix, style_loss, total_variation
from .runinfo import Event
from .style import STYLE_LOSSES, StyleLoss
from .vgg import LAYERS, vgg19_features, vgg19_params

__version__ = "0.1.0"
__all__ = ["CONTENT_LOSSES", "LAYERS", "STYLE_LOSSES", "ContentLoss", "Event", "NSTError", "Picture",
           "StyleLoss", "StylizeInterrupted",
           "content_loss",
           "enable_compilation_cache", "gatys_loss", "gram_matrix", "load_image", "save_image",
           "style_loss", "stylize", "stylize_many", "total_variation", "vgg19_features", "vgg19_params",
           "__version__"]
