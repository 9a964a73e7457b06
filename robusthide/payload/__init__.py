"""Payload coding: typed messages <-> N raw bits with a schema header, BCH error correction and whitening,
plus calibrated detection (p-values). See docs/payload.md."""

from robusthide.payload.codec import DecodeResult, capacity, decode_bits, encode_message, schema_table
from robusthide.payload.detection import (
    DEFAULT_FPR,
    MIRROR_SHARE,
    Detection,
    Verification,
    ball_volume,
    binomial_tail_p_value,
    confidence_from_p,
    decode_hypotheses,
    detect,
    false_accept_probability,
    max_detectable_errors,
    mirror_weights,
    p_value,
    verify_bits,
)
from robusthide.payload.schemas import (
    KINDS,
    SUPPORTED_N,
    MessageTooLongError,
    PayloadError,
    Schema,
    default_schema,
    get_schema,
    list_schemas,
    whitening_key,
)
from robusthide.payload.soft_detection import combined_p_value, soft_ball_counts, soft_p_value

__all__ = [
    "DEFAULT_FPR", "KINDS", "MIRROR_SHARE", "SUPPORTED_N", "DecodeResult", "Detection", "MessageTooLongError",
    "PayloadError", "Schema", "Verification", "ball_volume", "binomial_tail_p_value", "capacity",
    "combined_p_value", "confidence_from_p", "decode_bits", "decode_hypotheses", "default_schema", "detect",
    "encode_message", "false_accept_probability", "get_schema", "list_schemas", "max_detectable_errors",
    "mirror_weights", "p_value", "schema_table", "soft_ball_counts", "soft_p_value", "verify_bits", "whitening_key",
]
