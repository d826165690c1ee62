"""Model: the bi-encoder and its run manifest."""

from mpretriever.model.bi_encoder import DEFAULT_MODEL_NAME, BiEncoder, default_model_path
from mpretriever.model.manifest import MANIFEST_NAME, EncoderConfig, RunManifest, find_manifest

__all__ = [
    "DEFAULT_MODEL_NAME",
    "MANIFEST_NAME",
    "BiEncoder",
    "EncoderConfig",
    "RunManifest",
    "default_model_path",
    "find_manifest",
]
