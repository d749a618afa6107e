"""Benchmarks: AF-Reasoning-Eval, MMAU and MMAR (official-exact scoring), and an embedded-world eval.

``plugin`` registers them and the ``afcot bench`` command; the rules are in ``docs/benchmarks.md``.
"""
