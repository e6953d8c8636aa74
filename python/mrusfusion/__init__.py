"""mrusfusion: joint MR super-resolution and US despeckling by polynomial-link fusion."""
from ._version import __version__
from ._config import get_num_threads, set_num_threads, show_config

__all__ = ["__version__", "get_num_threads", "set_num_threads", "show_config"]
