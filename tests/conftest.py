import os

import numpy as np
import pytest
from scipy import ndimage

# No test reads or writes the user's FFTW wisdom file; tests/test_wisdom.py points it elsewhere.
os.environ["MRUSFUSION_WISDOM"] = "0"


def smooth_image(shape, seed=0, sigma=2.0, dtype=np.float64):
    """A smooth random image in [0, 1] (well-posed for polynomial fits)."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random(shape), sigma, mode="wrap")
    x = (x - x.min()) / (x.max() - x.min())
    return x.astype(dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


SHAPES = [(16, 16), (15, 21), (8, 7)]
DTYPES = [np.float32, np.float64]


def tol_for(dtype):
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12


def write_dicom(path, pixels, **attrs):
    """A minimal uncompressed DICOM file of ``pixels`` (a 2-D image, or frames along axis 0),
    with ``attrs`` set on the dataset; skips the test without pydicom."""
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    frames = pixels.shape[0] if pixels.ndim == 3 else 1
    ds.Rows, ds.Columns = pixels.shape[-2:]
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    if int(pydicom.__version__.split(".")[0]) >= 3:
        ds.save_as(path, enforce_file_format=True)
    else:  # pragma: no cover - pydicom 2.x
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=False)
    return path
