"""foresight: the composition root. ``foresight`` on the command line (``foresight.cli``, ``python -m foresight``)
and a short library façade over the layers below (docs/architecture.md). Names are imported on first use, so
``import foresight`` stays cheap::

    from pathlib import Path
    import foresight
    p = foresight.plan_curation(["corpus/"], "shards", "tokenizer.json")  # the curation run (pipeline)
    foresight.execute(p)                                             # run it
    mix = foresight.plan_mixture("lsbs_mix6", "shards")              # pools → exact token budgets (mixtures)
    foresight.build_manifest("lsbs_mix6", "shards", "manifests/m6")  # token-exact manifest (manifests)
    foresight.train_manifest(Path("manifests/m6"), Path("runs/m6"))  # train on exactly its tokens (trainer)
    foresight.connect("shards").query("SELECT source, count(*) AS n FROM segments GROUP BY 1")  # audit
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from foresight.formats import __version__

_FACADE = {
    "plan_curation": ("foresight.pipeline.curate", "plan_curation"),
    "execute": ("foresight.pipeline.curate", "execute"),
    "plan_mixture": ("foresight.mixtures", "plan"),
    "build_manifest": ("foresight.manifests", "build"),
    "verify_manifest": ("foresight.manifests", "verify"),
    "train_manifest": ("foresight.trainer.run", "train_manifest"),
    "connect": ("foresight.audit", "connect"),
}

__all__ = ["__version__", *_FACADE]


def __getattr__(name: str) -> Any:
    if name not in _FACADE:
        raise AttributeError(f"module 'foresight' has no attribute {name!r}")
    module, attr = _FACADE[name]
    return getattr(import_module(module), attr)
