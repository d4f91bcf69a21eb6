"""Hostile strings for the UI's escaping tests, and the workflow file that carries them.

Each payload that could execute sets ``window.__xss`` or opens a dialog; the tests assert
neither happened and that the page holds no inline script or event-handler attribute.
"""

from __future__ import annotations

HOSTILE: list[str] = [
    "<script>window.__xss=1</script>",
    "<script>alert(1)</script>",
    "</script><script>window.__xss=2</script>",
    "<img src=x onerror=window.__xss=3>",
    '<img src="x" onerror="alert(4)">',
    "<svg onload=window.__xss=5>",
    "<svg><script>window.__xss=6</script></svg>",
    '<svg><a xlink:href="javascript:window.__xss=7"><text>x</text></a></svg>',
    "<math><mtext><script>window.__xss=8</script></mtext></math>",
    '<math href="javascript:window.__xss=9">m</math>',
    "javascript:window.__xss=10",
    "JaVaScRiPt:alert(11)",
    '<a href="javascript:window.__xss=12">click</a>',
    '"><script>window.__xss=13</script>',
    "'><img src=x onerror=window.__xss=14>",
    '" onmouseover="window.__xss=15" x="',
    "' onfocus='window.__xss=16' autofocus '",
    "<body onload=window.__xss=17>",
    "<iframe src=javascript:window.__xss=18></iframe>",
    '<iframe srcdoc="<script>parent.__xss=19</script>"></iframe>',
    '<object data="javascript:window.__xss=20"></object>',
    '<embed src="javascript:window.__xss=21">',
    "<details open ontoggle=window.__xss=22>",
    "<input autofocus onfocus=window.__xss=23>",
    "<video><source onerror=window.__xss=24></video>",
    "<audio src=x onerror=window.__xss=25>",
    '<form action="javascript:window.__xss=26"><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=27">',
    '<base href="javascript:window.__xss=28//">',
    '<link rel="stylesheet" href="javascript:window.__xss=29">',
    "<style>@import 'javascript:window.__xss=30';</style>",
    '<div style="background:url(javascript:window.__xss=31)">',
    "{{7*7}}",
    "{% raw %}{{ config }}{% endraw %}",
    "${7*7}",
    "#{7*7}",
    "&lt;script&gt;window.__xss=32&lt;/script&gt;",
    "\u003cscript\u003ewindow.__xss=33\u003c/script\u003e",
    "<scr<script>ipt>window.__xss=34</scr</script>ipt>",
    "<!--<script>window.__xss=35</script>-->",
    "<template><script>window.__xss=36</script></template>",
    '<noscript><p title="</noscript><img src=x onerror=window.__xss=37>">',
    "data:text/html,<script>window.__xss=38</script>",
    '"-alert(39)-"',
    "<img src=x:alert(40) onerror=eval(src)>",
    "<svg><animate onbegin=window.__xss=41 attributeName=x dur=1s>",
    "<marquee onstart=window.__xss=42>x</marquee>",
    '<a href="&#106;avascript:window.__xss=43">x</a>',
    '<a href="jav&#x09;ascript:window.__xss=44">x</a>',
    "<svg><style><img src=x onerror=window.__xss=45></style></svg>",
    "<textarea></textarea><script>window.__xss=46</script>",
    "<select><option><script>window.__xss=47</script></option></select>",
    '"><svg/onload=window.__xss=48>',
    "<xmp><img src=x onerror=window.__xss=49></xmp>",
]

FLOWS = '''"""Workflows for the UI tests (generated; see tests/ui/hostile.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from orchestrion.spec.python import task, workflow

HOSTILE = {hostile!r}
Choice = Literal[{choices}]


@task(retries=0)
def step(name: str, delay: float) -> str:
    """One step of a chain."""
    time.sleep(delay)
    return name


@workflow(description="Three steps, one after the other.")
def ui_steps(label: str, delay: float = 0.8, mode: Literal["fast", "slow"] = "fast"):
    a = step("a", delay)
    b = step(a, delay)
    step(b, delay)


@task(retries=0)
def flaky(ctx: Any) -> list[str]:
    """Fails its first run, with hostile text everywhere, then succeeds."""
    marker = Path(f"flaky-{{ctx.run_id}}")
    for line in HOSTILE:
        print(line, flush=True)
    print("flaky: working", flush=True)
    time.sleep(0.5)
    if not marker.exists():
        marker.write_text("failed once")
        raise ValueError("flaky failure: " + " | ".join(HOSTILE))
    return HOSTILE


@workflow(description="Fails once; retry it from the UI.")
def ui_flaky():
    flaky()


@task(retries=0, description={desc!r})
def echo_all(text: str) -> list[str]:
    for line in HOSTILE:
        print(line)
    return [*HOSTILE, text]


@task(retries=0)
def boom(items: list[str]) -> None:
    raise RuntimeError(" || ".join(items))


@workflow(description={desc!r})
def ui_hostile(text: Choice = {first!r}):
    boom(echo_all(text))
'''


def flows_source() -> str:
    desc = " ".join(HOSTILE)
    return FLOWS.format(
        hostile=HOSTILE,
        choices=", ".join(repr(h) for h in HOSTILE),
        desc=desc,
        first=HOSTILE[0],
    )
