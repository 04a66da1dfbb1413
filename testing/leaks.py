"""What a cover leaves of a face: whether a detector still finds it, and how much of its structure survives.

Shared by the photo tests and the video tests, so a covered face in a video frame is held to the same limits as
one in a photo.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.metrics import structural_similarity

import detectors
from testing.images import Box

# A detection is "the face" when it overlaps the face box by IoU >= 0.4, stricter than the usual 0.5 of
# face-detection benchmarks: faces under weak covers (a light blur, coarse pixelation) are found far above it, while
# what overlaps a covered face at all is a head-shaped blob that tells a head was there, not whose.
FOUND_IOU = 0.4

# SSIM credits matching brightness and smooth areas, so even covers that carry no detail by construction (a flat
# fill of the face's mean colour, the face against its own upside-down copy) do not reach zero; covers that leave a
# face recognizable (a light blur, a low-quality JPEG) score far higher. tests/test_irreversibility.py shows both
# sides of this limit, and of the next.
SSIM_LIMIT = 0.4
# Correlation of fine detail (what a Gaussian of sigma 2 removes, at 128 px per face): near zero after noise,
# pixelate and solid; high after a light blur or JPEG compression.
DETAIL_LIMIT = 0.1


def found(detector: detectors.Detector, image: np.ndarray, face: Box) -> bool:
    """Whether ``detector`` finds a box on ``face`` (IoU of at least FOUND_IOU)."""
    face_detection = detectors.Detection(face.x, face.y, face.w, face.h, 1.0, "truth")
    return any(face_detection.iou(d) >= FOUND_IOU for d in detector.detect(image))


def face_gray(image: np.ndarray, face: Box) -> np.ndarray:
    """The face box in gray at 128 x 128, so the metrics compare the same share of a face at every size."""
    crop = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[face.y : face.y + face.h, face.x : face.x + face.w]
    return cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32)


def detail_correlation(original: np.ndarray, covered: np.ndarray) -> float:
    """Correlation of the fine detail of both crops; a crop without any detail shares none (0)."""
    fine_original = (original - cv2.GaussianBlur(original, (0, 0), 2)).ravel()
    fine_covered = (covered - cv2.GaussianBlur(covered, (0, 0), 2)).ravel()
    if fine_covered.std() < 1e-3:
        return 0.0
    return float(np.corrcoef(fine_original, fine_covered)[0, 1])


def similarity(original: np.ndarray, covered: np.ndarray) -> tuple[float, float]:
    """SSIM and fine-detail correlation of two ``face_gray`` crops."""
    ssim = float(structural_similarity(original, covered, data_range=255))
    return ssim, detail_correlation(original, covered)
