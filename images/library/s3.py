"""The S3/MinIO storage backend (django-storages), in its own module: boto3 is loaded only
where settings choose it."""

import threading
from typing import Any

from storages.backends import s3
from storages.utils import clean_name


class S3Storage(s3.S3Storage):
    """django-storages' S3 backend, presigning links for the address clients use.

    Inside compose the app reaches MinIO at http://minio:9000, a name only the containers resolve;
    a presigned link signs its host, so it must be made for the public address from the start.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._public_clients = threading.local()

    def get_default_settings(self) -> dict[str, Any]:
        return {**super().get_default_settings(), "public_endpoint_url": None}

    def url(
        self,
        name: str,
        parameters: dict[str, str] | None = None,
        expire: int | None = None,
        http_method: str | None = None,
    ) -> str:
        if not self.public_endpoint_url:
            return super().url(name, parameters, expire, http_method)
        params = {
            **(parameters or {}),
            "Bucket": self.bucket_name,
            "Key": self._normalize_name(clean_name(name)),
        }
        return self._public_client().generate_presigned_url(
            "get_object",
            Params=params,
            ExpiresIn=self.querystring_expire if expire is None else expire,
            HttpMethod=http_method,
        )

    def _public_client(self) -> Any:
        # boto3 clients are not thread-safe to create, and slow enough to keep (one per thread).
        client = getattr(self._public_clients, "client", None)
        if client is None:
            client = self._create_session().client(
                "s3",
                region_name=self.region_name,
                endpoint_url=self.public_endpoint_url,
                config=self.client_config,
                verify=self.verify,
            )
            self._public_clients.client = client
        return client
