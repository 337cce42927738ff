"""Sphinx configuration of geoml's documentation (build: ``bash docs/build.sh``)."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_api  # noqa: E402

import geoml  # noqa: E402  (the installed package is documented)

os.environ.setdefault("OMP_NUM_THREADS", "2")

project = "geoml"
author = "geoml developers"
copyright = "geoml developers"
version = release = geoml.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
]
templates_path = ["_templates"]

# ---- API reference: pages written from __all__ at each build (docs/gen_api.py)
gen_api.write(HERE / "api")
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()

# ---- Markdown (design notes, README excerpts)
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
# The README and design notes link to repository files (bench scripts, CONTRIBUTING.md): those
# links stay plain text here; a Markdown heading level jump in an excerpt is not an error.
suppress_warnings = ["myst.header", "myst.xref_missing"]

# ---- example gallery (examples/ at the repository root, run at every build)
sphinx_gallery_conf = {
    "examples_dirs": [str(HERE.parent / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "doc_module": ("geoml",),
    "reference_url": {"geoml": None},
    "backreferences_dir": "api/generated/backreferences",
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "download_all_examples": False,
}
warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")

# ---- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"geoml {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
html_favicon = "_static/favicon.svg"  # else browsers ask for /favicon.ico (a 404)
html_context = {"default_mode": "light"}  # a stored-mode-less first visit logs no error
