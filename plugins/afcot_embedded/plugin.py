"""Registers the embedded corpus and its two reference teachers."""

from __future__ import annotations

from afcot_core.api import hookimpl


@hookimpl
def register_sources(register):
    from afcot_embedded.source import EmbeddedSource, EmbeddedSourceConfig

    register("embedded", EmbeddedSource, EmbeddedSourceConfig,
             "procedural sound corpus (3-level class hierarchy, 14 leaves) with AQA and classification items")


@hookimpl
def register_teacher_alms(register):
    from afcot_embedded.alm import EmbeddedAlm, EmbeddedAlmConfig

    register("embedded-alm", EmbeddedAlm, EmbeddedAlmConfig,
             "reference ALM answering from DSP measurements of the waveform (no weights)")


@hookimpl
def register_teacher_llms(register):
    from afcot_embedded.llm import EmbeddedLlm, EmbeddedLlmConfig

    register("embedded-llm", EmbeddedLlm, EmbeddedLlmConfig,
             "scripted reference LLM for the embedded question grammar (never hears audio)")
