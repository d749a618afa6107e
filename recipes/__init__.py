"""The built-in recipes, shipped as the package data of ``afcot_recipes`` (see ``afcot_core.catalog``)."""
