"""Data Docs lines in words for candlecast's own expectations.

GX renders an expectation without a prescriptive renderer as its class name and raw kwargs
(``expect_column_values_to_be_aligned_to_timeframe(**{'batch_id': ..., 'step_ms': 3600000})``). A custom
expectation that mixes ``InWords`` in gets GX's legacy prescriptive renderer (what the Data Docs
result and suite pages call) filled from its ``words`` template; an expectation's ``description``,
where a suite sets one, still comes first (GX prefers it to any renderer).
"""

from __future__ import annotations

from typing import Any, ClassVar

from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer

_UNITS = (("day", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000))


def duration(ms: int) -> str:
    """A step in milliseconds as a timeframe reads: 3600000 -> '1 h', 900000 -> '15 min', 86400000 -> '1 day'."""
    for unit, size in _UNITS:
        if ms >= size and ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"


class InWords:
    """Mixin for a custom expectation: its Data Docs line is ``words`` with the kwargs substituted.

    ``$column``, ``$column_list`` and the expectation's own arguments are available; ``$step`` is
    ``step_ms`` as a duration. A leading ``$column`` is dropped where GX says not to repeat the column
    (its column sections), as its own expectations do.
    """

    words: ClassVar[str]

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls, configuration: Any = None, result: Any = None, runtime_configuration: dict | None = None, **kwargs: Any
    ) -> list[RenderedStringTemplateContent]:
        # GX calls this with a configuration, a validation result, or both (see Expectation._prescriptive_renderer)
        config = configuration if configuration is not None else getattr(result, "expectation_config", None)
        params = {k: v for k, v in dict(getattr(config, "kwargs", None) or {}).items() if k != "batch_id"}
        if isinstance(params.get("step_ms"), int):
            params["step"] = duration(params["step_ms"])
        if isinstance(params.get("column_list"), list):
            params["column_list"] = ", ".join(map(str, params["column_list"]))
        runtime = runtime_configuration or {}
        words = cls.words.removeprefix("$column ") if runtime.get("include_column_name") is False else cls.words
        template = {"template": words, "params": params, "styling": runtime.get("styling")}
        return [RenderedStringTemplateContent(content_block_type="string_template", string_template=template)]
