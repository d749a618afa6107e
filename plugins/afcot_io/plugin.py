"""Registers the WebDataset sink and the JSONL manifest source."""

from __future__ import annotations

from afcot_core.api import hookimpl


@hookimpl
def register_sinks(register):
    from afcot_io.webdataset_sink import WebDatasetConfig, WebDatasetSink

    register("webdataset", WebDatasetSink, WebDatasetConfig,
             "WebDataset tar shards: {key}.flac, {key}.json (Record), {key}.txt (CoT target)")


@hookimpl
def register_sources(register):
    from afcot_io.manifest import ManifestConfig, ManifestSource, preflight

    register("manifest", ManifestSource, ManifestConfig,
             "a JSONL manifest of audio files with questions and answers", preflight=preflight)

    from afcot_io.afthink import AfThinkConfig, AfThinkSource
    from afcot_io.afthink import preflight as afthink_preflight

    register("afthink", AfThinkSource, AfThinkConfig, "AF-Think / AF3 training JSON (sound + conversations)",
             preflight=afthink_preflight)


@hookimpl
def register_commands(register):
    from afcot_io import export

    register("export", "write a run's shards as AF-Think / AF3 training JSON or AF2 manifests", export.configure,
             export.run)
