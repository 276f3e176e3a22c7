"""ament_python package vode_ros (run time) + vode_training (offline PyTorch, folder training/)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "vode_ros"
training_packages = ["vode_training"] + [
    "vode_training." + p for p in find_packages(where="training")
]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["vode_ros", "vode_ros.*"]) + training_packages,
    # The folder reads as the pipeline stage; the import name cannot clash with another
    # project's top-level `training` package.
    package_dir={"vode_training": "training"},
    package_data={"vode_training.data": ["splits/*.txt", "splits/*.md"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
        ("share/" + PACKAGE + "/config/train", glob("config/train/*.yaml")),
        ("share/" + PACKAGE + "/models", glob("models/*.*")),
        ("share/" + PACKAGE + "/models/indoor", glob("models/indoor/*.*")),
        # The demo clip and the message definitions: vode_ros.core.resources finds them here
        # when the package runs from an install (colcon without --symlink-install, or a wheel).
        ("share/" + PACKAGE + "/data", glob("data/*.md")),
    ] + [
        ("share/" + PACKAGE + "/" + folder, glob(folder + "/*.*"))
        for folder in sorted(d.rstrip("/") for d in glob("data/*/") + glob("data/*/*/"))
    ] + [
        ("share/" + PACKAGE + "/msg", glob("msg/*.msg")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="vode_ros developers",
    maintainer_email="vode-ros@example.com",
    description="Self-supervised depth and visual odometry (SfMLearner family) for ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "vode = vode_ros.cli.main:main",
            "depth_node = vode_ros.nodes.depth_node:main",
            "odometry_node = vode_ros.nodes.odometry_node:main",
        ],
    },
)
