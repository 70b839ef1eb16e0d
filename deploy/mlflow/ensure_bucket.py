"""Create the MLflow artifact bucket on the S3-compatible store if it is missing (init container / compose).

Reads MLFLOW_ARTIFACTS_DESTINATION (s3://BUCKET/prefix), MLFLOW_S3_ENDPOINT_URL and the AWS_* credentials
from the environment; retries while the store is starting.
"""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import urlsplit


def bucket_name(destination: str) -> str:
    """The bucket of an s3://BUCKET/prefix URI."""
    parts = urlsplit(destination)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"expected s3://BUCKET[/prefix], got {destination!r}")
    return parts.netloc


def main() -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = bucket_name(os.environ["MLFLOW_ARTIFACTS_DESTINATION"])
    s3 = boto3.client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL"))
    for attempt in range(30):
        try:
            existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
            if bucket not in existing:
                s3.create_bucket(Bucket=bucket)
                print(f"created bucket {bucket}")
            else:
                print(f"bucket {bucket} exists")
            return 0
        except (BotoCoreError, ClientError) as exc:
            print(f"waiting for the object store ({attempt + 1}/30): {exc}", file=sys.stderr)
            time.sleep(5)
    return 1


if __name__ == "__main__":
    sys.exit(main())
