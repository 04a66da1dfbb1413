"""Photos that carry every kind of metadata a phone writes, and the check that none of it comes out."""

from __future__ import annotations

import io

import cv2
from PIL import ExifTags, Image

from testing.images import astronaut_bgr

SECRETS = (b"SecretCam 3000", b"Jane Q. Photographer", b"secret comment", b"secret-xmp-value", b"secret text chunk")
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Label="secret-xmp-value"/></rdf:RDF></x:xmpmeta>'
)
METADATA_MARKERS = (b"Exif", b"http://ns.adobe.com/xap", b"tEXt", b"iTXt", b"zTXt", b"eXIf", *SECRETS)


def pillow_bytes(image: Image.Image, image_format: str, **params: object) -> bytes:
    """``image`` saved by Pillow in ``image_format`` with its save parameters (EXIF, comments, quality...)."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    """A phone's EXIF block: the orientation, the camera, the photographer and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Model] = "SecretCam 3000"
    exif[ExifTags.Base.Artist] = "Jane Q. Photographer"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 18.0)
    return exif


def stored_sideways(image_format: str) -> bytes:
    """The astronaut stored turned 90 degrees clockwise, with EXIF orientation 8 (turn back) and GPS."""
    sideways = cv2.rotate(astronaut_bgr(), cv2.ROTATE_90_CLOCKWISE)
    buffer = io.BytesIO()
    rgb = Image.fromarray(cv2.cvtColor(sideways, cv2.COLOR_BGR2RGB))
    rgb.save(buffer, image_format, exif=exif_with_gps(8).tobytes(), quality=90)
    return buffer.getvalue()


def assert_no_metadata(data: bytes) -> None:
    """No EXIF, XMP, text chunk, comment or secret value anywhere in an image file's bytes."""
    for marker in METADATA_MARKERS:
        assert marker not in data, marker
    image = Image.open(io.BytesIO(data))
    assert not image.getexif()
    assert not {"exif", "xmp", "comment", "XML:com.adobe.xmp"} & set(image.info)
