from modelopsx.data.image_integrity import check_image_bytes, jpeg_end
from tests.unit.data.data_io_fixtures import image_bytes


def test_image_byte_checks() -> None:
    jpeg = image_bytes(32, 24, ".jpg")
    png = image_bytes(32, 24, ".png")
    assert check_image_bytes(jpeg) == (None, None, (32, 24))
    assert check_image_bytes(png) == (None, None, (32, 24))
    assert check_image_bytes(b"")[0] == "empty file (0 bytes)"
    assert "truncated or corrupt JPEG" in str(check_image_bytes(jpeg[: len(jpeg) * 2 // 3])[0])
    assert "truncated PNG" in str(check_image_bytes(png[:-20])[0])
    flipped = bytearray(png)
    flipped[len(png) // 2 : len(png) // 2 + 40] = bytes(range(40))
    assert "not a decodable image" in str(check_image_bytes(bytes(flipped))[0]), "corrupt PNG (CRC/filter)"
    assert "not a decodable image" in str(check_image_bytes(b"\xff\xd8\xff" + b"\x00" * 50 + b"\xff\xd9")[0])
    assert check_image_bytes(jpeg + b"trailing junk")[1] == "13 extra byte(s) after the end of the image"
    assert check_image_bytes(jpeg + b"\x00\x00")[1] is None


def test_truncated_jpeg_with_exif_thumbnail_is_caught() -> None:
    """The thumbnail inside APP1 has its own FF D9; a structural walk must not stop there."""
    thumb = image_bytes(8, 8, ".jpg", seed=3)
    payload = b"Exif\x00\x00" + thumb
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    full = image_bytes(64, 48, ".jpg")
    with_thumb = full[:2] + app1 + full[2:]
    assert jpeg_end(with_thumb) == len(with_thumb)
    assert check_image_bytes(with_thumb)[:2] == (None, None)
    for cut in (len(with_thumb) - 2, len(app1) + 200, len(with_thumb) // 2 + len(app1) // 2):
        assert jpeg_end(with_thumb[:cut]) is None
        assert "truncated or corrupt JPEG" in str(check_image_bytes(with_thumb[:cut])[0])
