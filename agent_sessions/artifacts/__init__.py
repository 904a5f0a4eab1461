"""Artifact content stores: the ``ArtifactStore`` port, files on disk, S3 objects.

Importing this package never needs boto3; only building an ``S3ArtifactStore`` does.
"""

from .artifact_store import ArtifactData, ArtifactRef, ArtifactStore
from .file_store import FileArtifactStore
from .s3_store import S3ArtifactStore

__all__ = ["ArtifactData", "ArtifactRef", "ArtifactStore", "FileArtifactStore", "S3ArtifactStore"]
