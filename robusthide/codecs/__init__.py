"""Real codecs behind one interface (see :mod:`robusthide.codecs.base`), named by spec strings.

Images: ``jpeg``, ``jpeg2000``, ``webp``, ``avif``, ``jxl``, ``png`` (:mod:`~robusthide.codecs.image`);
video: ``mpeg4``, ``xvid``, ``h264``, ``h265``, ``vp9``, ``av1`` (:mod:`~robusthide.codecs.video`);
distortions: ``resize``, ``crop``, ``flip``, ``rotate``, ``reframe`` (:mod:`~robusthide.codecs.geometric`); a
photo inside a larger picture: ``pad``, ``inset``, ``collage`` (:mod:`~robusthide.codecs.framing`); chains ``a|b``
(:mod:`~robusthide.codecs.chain`). ``robusthide codecs`` lists them with their libraries.
"""

from robusthide.codecs.base import Codec, CodecError, CodecResult, CodecUnavailableError
from robusthide.codecs.registry import get_codec, list_codecs, parse_step, register_codec

__all__ = ["Codec", "CodecError", "CodecResult", "CodecUnavailableError", "get_codec", "list_codecs",
           "parse_step", "register_codec"]
