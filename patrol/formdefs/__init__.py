"""Form definitions as data: load `forms/*.toml`, check them, report every error at once."""
from .loader import FormDefError, FormDefinition, FormSet, load_forms, check_forms  # noqa: F401
