"""An example afcot plugin, installable with pip."""
