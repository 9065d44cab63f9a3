"""Regenerate the gRPC modules beside this file from ``grpc_predict_v2.proto``.

Run from the repository root: ``python src/mlwright/serve/_proto/_generate.py`` (needs
grpcio-tools). The generated descriptors go into a private descriptor pool instead of the
process-wide default one: the proto's message names (``inference.ModelInferRequest``, ...) are
the ones Triton's client also registers, and two registrations of one name in the default pool
fail, which would stop a process from importing both ``tritonclient.grpc`` and mlwright's server.
The generated base servicer (every method answering UNIMPLEMENTED) is removed: mlwright's
``serve._grpc.InferenceServicer`` implements all six RPCs and is registered with
``add_GRPCInferenceServiceServicer_to_server``, which needs no base class.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_ROOT = HERE.parents[2]
PROTO = HERE / "grpc_predict_v2.proto"


def main() -> None:
    relative = PROTO.relative_to(SOURCE_ROOT).as_posix()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{SOURCE_ROOT}",
            f"--python_out={SOURCE_ROOT}",
            f"--pyi_out={SOURCE_ROOT}",
            f"--grpc_python_out={SOURCE_ROOT}",
            relative,
        ],
        check=True,
    )
    generated = HERE / "grpc_predict_v2_pb2.py"
    text = generated.read_text(encoding="utf-8")
    patched = text.replace(
        "_descriptor_pool.Default().AddSerializedFile(",
        "_descriptor_pool.DescriptorPool().AddSerializedFile(",
    )
    if patched == text:
        raise SystemExit("the generated module no longer calls Default().AddSerializedFile")
    generated.write_text(patched, encoding="utf-8")
    services = HERE / "grpc_predict_v2_pb2_grpc.py"
    services.write_text(drop_base_servicer(services.read_text(encoding="utf-8")), encoding="utf-8")


def drop_base_servicer(text: str) -> str:
    """The generated services module without its UNIMPLEMENTED base servicer class."""
    start = text.find("class GRPCInferenceServiceServicer:")
    end = text.find("def add_GRPCInferenceServiceServicer_to_server(")
    if start < 0 or end < start:
        raise SystemExit("the generated services module no longer has the expected layout")
    return text[:start] + text[end:]


if __name__ == "__main__":
    main()
