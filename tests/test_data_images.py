"""Image folders, CelebA and Linnaeus 5: modes, sizes, labels, the .npy cache, bad input."""
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinygan.data import DatasetError, load
from tinygan.data import folders, images as images_module


@pytest.fixture
def env(data_home):
    return data_home


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def rgb(seed, w=8, h=6):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(path: Path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode is None else array.save(path)


def reference(path, gray=False, size=None):
    """What the policy says a file decodes to, computed with PIL directly."""
    img = Image.open(path).convert("L" if gray else "RGB")
    if size is not None:
        w, h = img.size
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    a = np.asarray(img)
    return a[None] if gray else a.transpose(2, 0, 1)


# --- folders -------------------------------------------------------------------------------

def test_class_folders_read_back_exactly(env):
    root = env / "pics"
    arrays = {("cat", "a.png"): rgb(1), ("cat", "b.PNG"): rgb(2), ("dog", "c.png"): rgb(3)}
    for (cls, name), a in arrays.items():
        save(root / cls / name, a)
    (root / "cat" / "notes.txt").write_text("not an image")
    data = load(f"folder:{root}")
    assert data.classes == ["cat", "dog"] and data.num_classes == 2
    assert data.images.shape == (3, 3, 6, 8) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.labels, [0, 0, 1])
    for i, a in enumerate(arrays.values()):
        np.testing.assert_array_equal(data.images[i], a.transpose(2, 0, 1))


def test_mixed_modes_become_rgb_with_alpha_on_white(env):
    root = env / "mixed"
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    save(root / "1_gray.png", gray)
    save(root / "2_rgb.png", rgb(4))
    rgba = np.dstack([rgb(5), np.where(np.arange(8) < 4, 0, 255).astype(np.uint8)[None]
                      .repeat(6, 0)])
    save(root / "3_rgba.png", rgba)
    palette = Image.fromarray(rgb(6)).quantize(16)
    palette.info["transparency"] = 0
    save(root / "4_p.png", palette, mode="P")
    data = load(f"folder:{root}")
    assert data.images.shape == (4, 3, 6, 8) and data.labels is None and data.classes == []
    np.testing.assert_array_equal(data.images[0], np.stack([gray] * 3))  # R = G = B = L
    np.testing.assert_array_equal(data.images[1], rgb(4).transpose(2, 0, 1))
    expected = rgb(5).transpose(2, 0, 1).copy()
    expected[:, :, :4] = 255  # transparent -> white
    np.testing.assert_array_equal(data.images[2], expected)
    p = Image.open(root / "4_p.png")
    index = np.asarray(p)
    colours = np.asarray(p.convert("RGB")).transpose(2, 0, 1).copy()
    colours[:, index == 0] = 255  # the transparent palette entry -> white
    np.testing.assert_array_equal(data.images[3], colours)


def test_all_gray_folder_keeps_one_channel(env):
    root = env / "gray"
    g = np.random.default_rng(0).integers(0, 256, (5, 7), dtype=np.uint8)
    save(root / "a.png", g)
    la = np.dstack([g, np.full_like(g, 255)])
    save(root / "b.png", Image.fromarray(la, "LA"), mode="LA")
    save(root / "c.png", Image.fromarray(g > 128).convert("1"), mode="1")
    i16 = (g.astype(np.uint16) << 8) | 0x7F
    save(root / "d.png", Image.fromarray(i16), mode="I;16")
    data = load(f"folder:{root}")
    assert data.image_shape == (1, 5, 7)
    for i in range(2):
        np.testing.assert_array_equal(data.images[i, 0], g)
    np.testing.assert_array_equal(data.images[2, 0], np.where(g > 128, 255, 0))
    np.testing.assert_array_equal(data.images[3, 0], g)  # 16-bit keeps its high byte


def test_mixed_sizes_default_to_64_centre_crop(env):
    root = env / "sizes"
    save(root / "wide.png", rgb(1, w=100, h=80))
    save(root / "tall.png", rgb(2, w=70, h=90))
    save(root / "small.jpg", rgb(3, w=40, h=40))
    data = load(f"folder:{root}")
    assert data.images.shape == (3, 3, 64, 64)
    for i, name in enumerate(["small.jpg", "tall.png", "wide.png"]):
        np.testing.assert_array_equal(data.images[i], reference(root / name, size=64))
    assert load(f"folder:{root}", size=16).image_shape == (3, 16, 16)


def test_jpeg_folder_matches_pil(env):
    root = env / "jpeg"
    for k in range(3):
        save(root / f"{k}.jpg", rgb(k, 20, 20))
    data = load(f"folder:{root}")
    for k in range(3):
        np.testing.assert_array_equal(data.images[k], reference(root / f"{k}.jpg"))


def test_split_sub_folders(env):
    for split, seed in (("train", 1), ("test", 2)):
        save(env / "s" / split / "a" / "x.png", rgb(seed))
        save(env / "s" / split / "b" / "y.png", rgb(seed + 10))
    train, test = load(f"folder:{env / 's'}"), load(f"folder:{env / 's'}", "test")
    np.testing.assert_array_equal(test.images[0], rgb(2).transpose(2, 0, 1))
    assert train.classes == test.classes == ["a", "b"]
    with pytest.raises(DatasetError, match="no test/ sub-folder"):
        load(f"folder:{env / 's' / 'train'}", "test")


# --- the decoded cache -----------------------------------------------------------------------

def test_decoded_once_then_read_from_npy(env, monkeypatch):
    root = env / "c"
    for k in range(3):
        save(root / "k" / f"{k}.png", rgb(k))
    first = load(f"folder:{root}")
    entries = list((env / "xdg" / "tinygan" / "decoded").iterdir())
    assert len(entries) == 1
    assert sorted(p.name for p in entries[0].iterdir()) == ["images.npy", "labels.npy",
                                                           "meta.json"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    with monkeypatch.context() as patch:  # (not undo(): that would also undo the env)
        patch.setattr(folders, "decode_many", no_decoding)
        second = load(f"folder:{root}")
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert second.classes == ["k"]
    load(f"folder:{root}", size=4)  # the size is part of the key
    save(root / "k" / "new.png", rgb(9))  # so is the folder's content
    assert len(load(f"folder:{root}")) == 4
    assert len(list((env / "xdg" / "tinygan" / "decoded").iterdir())) == 3


# --- bad folders ---------------------------------------------------------------------------

def test_empty_and_imageless_folders(env):
    cache = env / "xdg" / "tinygan"
    before = snapshot(cache)
    (env / "empty").mkdir()
    (env / "texts").mkdir()
    (env / "texts" / "a.txt").write_text("hello")
    for folder in ("empty", "texts"):
        with pytest.raises(DatasetError, match="empty or image-less folder") as err:
            load(f"folder:{env / folder}")
        assert str(env / folder) in str(err.value)
    with pytest.raises(DatasetError, match="not a folder"):
        load(f"folder:{env / 'nowhere'}")
    assert snapshot(cache) == before


def test_unreadable_images_are_skipped_and_counted(env):
    root = env / "some-bad"
    save(root / "a" / "good.png", rgb(1))
    save(root / "b" / "good.png", rgb(2))
    (root / "a" / "junk.jpg").write_bytes(b"not a jpeg at all")
    data = bytearray((root / "b" / "good.png").read_bytes())
    (root / "b" / "truncated.png").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable image\(s\) of 4") as w:
        data = load(f"folder:{root}")
    assert "junk.jpg" in str(w[0].message)
    assert len(data) == 2
    np.testing.assert_array_equal(data.labels, [0, 1])  # labels stay with their images
    np.testing.assert_array_equal(data.images[1], rgb(2).transpose(2, 0, 1))


def test_all_unreadable_is_an_error_and_cache_unchanged(env):
    cache = env / "xdg" / "tinygan"
    before = snapshot(cache)
    root = env / "all-bad"
    root.mkdir()
    (root / "x.png").write_bytes(b"\x89PNG broken")
    (root / "y.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="none of the 2 image files could be decoded") as e:
        load(f"folder:{root}")
    assert str(root) in str(e.value) and "x.png" in str(e.value)
    assert snapshot(cache) == before


def test_loose_images_beside_class_folders(env):
    save(env / "m" / "loose.png", rgb(1))
    save(env / "m" / "cls" / "a.png", rgb(2))
    with pytest.raises(DatasetError, match="both loose images") as err:
        load(f"folder:{env / 'm'}")
    assert "loose.png" in str(err.value)


# --- CelebA --------------------------------------------------------------------------------

def celeba_files(folder: Path, numbers=(1, 2, 3, 182638)):
    for n in numbers:
        save(folder / f"{n:06d}.jpg", rgb(n, w=178, h=218))
    return [folder / f"{n:06d}.jpg" for n in numbers]


@pytest.mark.parametrize("layout", ["folder", "zip"])
def test_celeba_crop_resize_and_splits(env, layout):
    base = env / "xdg" / "tinygan" / "celeba"
    files = celeba_files(env / "src" / "img_align_celeba")
    if layout == "folder":
        (base).mkdir(parents=True)
        (env / "src" / "img_align_celeba").rename(base / "img_align_celeba")
        files = [base / "img_align_celeba" / f.name for f in files]
    else:
        base.mkdir(parents=True)
        with zipfile.ZipFile(base / "img_align_celeba.zip", "w") as z:
            z.writestr("img_align_celeba/", "")
            for f in files:
                z.write(f, f"img_align_celeba/{f.name}")
    train = load("celeba")
    assert train.images.shape == (3, 3, 64, 64) and train.labels is None
    for i in range(3):
        np.testing.assert_array_equal(train.images[i], reference(files[i], size=64))
    test = load("celeba", "test")
    assert len(test) == 1
    np.testing.assert_array_equal(test.images[0], reference(files[3], size=64))
    assert len(load("celeba", "all")) == 4 and len(load("celeba", "all", size=32)) == 4


def test_celeba_crop_is_the_central_178_square():
    img = Image.fromarray(rgb(0, w=178, h=218))
    np.testing.assert_array_equal(np.asarray(images_module.centre_square(img)),
                                  rgb(0, w=178, h=218)[20:198])


def test_celeba_zip_with_escaping_member(env):
    base = env / "xdg" / "tinygan" / "celeba"
    base.mkdir(parents=True)
    with zipfile.ZipFile(base / "img_align_celeba.zip", "w") as z:
        z.writestr("../000001.jpg", b"x")
    before = snapshot(env / "xdg")
    with pytest.raises(DatasetError, match="escapes its folder") as err:
        load("celeba")
    assert str(base / "img_align_celeba.zip") in str(err.value)
    assert snapshot(env / "xdg") == before


def test_celeba_missing_says_where_to_get_and_put_it(env):
    with pytest.raises(DatasetError) as err:
        load("celeba", root=env / "data")
    text = str(err.value)
    assert "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html" in text
    assert str(env / "data" / "celeba" / "img_align_celeba.zip") in text
    with pytest.raises(DatasetError) as err:
        load("celeba")
    assert str(env / "xdg" / "tinygan" / "celeba" / "img_align_celeba.zip") in str(err.value)


# --- Linnaeus 5 ----------------------------------------------------------------------------

CLASSES = ["berry", "bird", "dog", "flower", "other"]


@pytest.mark.parametrize("version,side", [("Linnaeus 5 64X64", 64), ("Linnaeus 5 256X256", 256)])
def test_flowers(env, version, side):
    base = env / "data" / "flowers" / version
    for split in ("train", "test"):
        for k, cls in enumerate(CLASSES):
            for j in range(2 if split == "train" else 1):
                save(base / split / cls / f"{j}_{cls}.jpg", rgb(10 * k + j, side, side))
    train = load("flowers", root=env / "data")
    assert train.classes == CLASSES and train.images.shape == (10, 3, 64, 64)
    np.testing.assert_array_equal(train.labels, np.repeat(np.arange(5), 2))
    np.testing.assert_array_equal(
        train.images[2], reference(base / "train" / "bird" / "0_bird.jpg",
                                   size=None if side == 64 else 64))
    assert len(load("flowers", "test", root=env / "data")) == 5


def test_flowers_missing_says_where(env):
    with pytest.raises(DatasetError) as err:
        load("flowers")
    text = str(err.value)
    assert "http://chaladze.com/l5/" in text
    assert str(env / "xdg" / "tinygan" / "flowers" / "Linnaeus 5 64X64") in text
