"""The train stage: a registered trainer finetunes a student on the generated shards (registered by this plugin,
beside its trainers, as the evaluate stage is by the benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from afcot_core.api import Component, Plugins, component


@dataclass
class TrainSection:
    trainer: Component

    def components(self) -> list[Component]:
        return [self.trainer]

    def to_table(self) -> dict[str, Any]:
        return self.trainer.to_table()

    def run(self, ctx: Any) -> Any:
        ctx.log.info("building the model", trainer=self.trainer.registration.name)  # before any slow import
        trainer = self.trainer.build()
        progress = ctx.progress if ctx.show_progress else None
        return trainer.train(data_dir=ctx.out_dir / "generate", out_dir=ctx.out_dir / "train", log=ctx.log,
                             progress=progress)


class TrainStage:
    def parse(self, table: Any, plugins: Plugins) -> TrainSection:
        return TrainSection(component(table, "trainer", "train", plugins))
