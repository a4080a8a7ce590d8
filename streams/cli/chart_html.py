"""The HTML page of a chart: self-contained, and as wide as the browser window.

The Vega-Lite spec's ``width: "container"`` makes each panel's plot area as wide
as the page element holding the chart (``#vis``, given the full width here).
The y axes and the legends come on top of that width, so a small script,
once the chart is drawn and on every resize, narrows the plot area by their
width: the chart then fits the window without a horizontal scroll bar.
Vega, Vega-Lite and vega-embed are inlined (no network access needed).
"""

from __future__ import annotations

import html
import json
from typing import Any

_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ margin: 0; padding: 8px 12px; font-family: sans-serif; }}
  #vis, #vis.vega-embed {{ width: 100%; display: block; box-sizing: border-box; }}
</style>
<script type="text/javascript">
{bundle}
</script>
</head>
<body>
<div id="vis"></div>
<script type="text/javascript">
  const spec = {spec};
  const embedOpt = {embed};
  function fitWidth(view) {{
    const box = document.getElementById("vis");
    const drawn = box.querySelector("svg, canvas");
    if (!drawn) return;
    const extra = drawn.getBoundingClientRect().width - view.width();
    const want = Math.max(Math.floor(box.clientWidth - extra), 120);
    if (Math.abs(want - view.width()) >= 1) view.width(want).runAsync();
  }}
  vegaEmbed("#vis", spec, embedOpt).then(function (result) {{
    fitWidth(result.view);
    window.addEventListener("resize", function () {{
      result.view.runAsync().then(function () {{ fitWidth(result.view); }});
    }});
  }}).catch(console.error);
</script>
</body>
</html>
"""


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element (no ``</`` in it)."""
    return json.dumps(value).replace("</", "<\\/")


def page(spec: dict[str, Any], bundle: str, embed: dict[str, Any]) -> str:
    """The HTML page of the Vega-Lite ``spec``, with the JavaScript ``bundle`` inlined."""
    title = spec.get("title") or "FlexStream chart"
    if isinstance(title, dict):
        title = title.get("text", "FlexStream chart")
    return _PAGE.format(
        title=html.escape(str(title)),
        bundle=bundle,
        spec=script_json(spec),
        embed=script_json(embed),
    )
