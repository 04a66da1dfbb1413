"""photo-anonymization: find every face in a photo and cover it before the photo goes anywhere."""

from setuptools import find_packages, setup

BOT = [
    "aiogram>=3.20,<4",
    "pydantic-settings>=2.6,<3",
    "Pebble>=5.1,<6",
    "taskiq>=0.13,<0.14",
    "taskiq-redis>=1.2,<2",
    "redis>=6,<9",
    "prometheus-client>=0.21,<1",
]
BENCH = [
    "pytest-benchmark>=5,<6",
    "matplotlib>=3.9,<4",
    "psutil>=6,<8",
]
# The packages whose type hints mypy checks (make typecheck) and that say so to their users (PEP 561).
TYPED = ["detectors", "filters", "anonymizer"]
# Files a package reads at run time: the activation ranges SCRFD's INT8 weights are derived with, the cluster's
# Redis scripts, the Mini App's page.
DATA = {
    "detectors": ["scrfd_int8_ranges.json"],
    "bot.cluster": ["scripts/*.lua"],
    "bot.miniapp": ["static/*"],
}

setup(
    name="photo-anonymization",
    version="0.1.0",
    description="Detect faces in photos and make them unrecognizable: library, command line and Telegram bot.",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["detectors*", "filters*", "anonymizer*", "bot*", "benchmarks*"]),
    install_requires=[
        "opencv-contrib-python-headless>=4.14,<5",
        "scikit-image>=0.25,<0.27",
        "numpy>=2.0,<3",
        "onnx>=1.17,<2",
        # SCRFD's default backend, faster than cv2.dnn on the same weights and giving the same boxes (MIT; its
        # flatbuffers is Apache-2.0); it also derives and runs the INT8 weights.
        "onnxruntime>=1.32,<2",
        "Pillow>=11,<14",
        "platformdirs>=4,<5",
        "tqdm>=4.66,<5",
        "av>=16,<19",
        "pillow-heif>=1.0,<2",
    ],
    package_data={name: (["py.typed"] if name in TYPED else []) + DATA.get(name, []) for name in [*TYPED, *DATA]},
    extras_require={
        "bot": BOT,
        "bench": BENCH,
        "test": [
            *BOT,
            *BENCH,
            "pytest>=8,<10",
            "pytest-asyncio>=0.24,<2",
            "pytest-timeout>=2.3,<3",
            "hypothesis>=6.100,<7",
            "mypy>=2.4,<3",
            # Drives Debian's Chromium (apt-get install chromium) in the Mini App editor's browser tests.
            "playwright>=1.64,<2",
        ],
    },
    entry_points={
        "console_scripts": [
            "photo-anon=anonymizer.cli:main",
            "photo-anon-bot=bot.__main__:main",
        ],
    },
)
