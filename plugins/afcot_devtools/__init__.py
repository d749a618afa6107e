"""Tools for people who write recipes and plugins: the plugin scaffold, the recipe reference, ``recipe list`` and
``recipe show``, ``afcot inspect`` and the dataset card of a generate folder."""
