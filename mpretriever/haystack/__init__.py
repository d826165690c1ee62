"""Haystack components: the retriever, the document embedder and an offline local generator.

Haystack 3 only deserialises classes from allow-listed modules: load pipelines that use these components with
``Pipeline.loads(text, allowed_modules=["mpretriever.*"])`` (what ``mpretriever.pipelines.load_pipeline`` does), or
set ``HAYSTACK_DESERIALIZATION_ALLOWLIST=mpretriever.*``.
"""

from mpretriever.haystack.document_embedder import MPRDocumentEmbedder
from mpretriever.haystack.generator import LocalGGUFGenerator
from mpretriever.haystack.retriever import MPRetriever

__all__ = ["LocalGGUFGenerator", "MPRDocumentEmbedder", "MPRetriever"]
