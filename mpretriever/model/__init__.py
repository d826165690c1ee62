"""Model: the bi-encoder, its run manifest, inference backends and the CPU encoding pool.

Names are imported lazily, so ``mpretriever.model.backends`` (whose names the CLI's options show) loads without
torch.
"""

from __future__ import annotations

from mpretriever.lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_MODEL_NAME": "mpretriever.model.bi_encoder",
    "BiEncoder": "mpretriever.model.bi_encoder",
    "default_model_path": "mpretriever.model.bi_encoder",
    "MANIFEST_NAME": "mpretriever.model.manifest",
    "EncoderConfig": "mpretriever.model.manifest",
    "RunManifest": "mpretriever.model.manifest",
    "find_manifest": "mpretriever.model.manifest",
    "BACKENDS": "mpretriever.model.backends",
    "Backend": "mpretriever.model.backends",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
