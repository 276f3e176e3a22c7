"""How many large images arrive between two processes, per transport (docs/reliability.md, "Large images").

    .venv/bin/python scripts/large_image_delivery.py WIDTH HEIGHT ENCODING {best_effort,reliable} {raw,compressed}

Starts a subscriber process with the nodes' input QoS (sensor data; RELIABLE + KEEP_ALL for reliable), then
publishes 8 images at 5 Hz from this process once the subscriber has matched, and prints "arrived N of 8".
Set FASTDDS_DEFAULT_PROFILES_FILE=config/fastdds_large_images.xml (or FASTDDS_BUILTIN_TRANSPORTS=...) in the
environment to measure a transport; both processes inherit it.
"""
from __future__ import annotations

import subprocess
import sys
import time

SUBSCRIBER = """
import sys, time
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
reliable, compressed = sys.argv[1] == "reliable", sys.argv[2] == "compressed"
rclpy.init()
node = rclpy.create_node("delivery_subscriber")
qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE) if reliable \\
    else qos_profile_sensor_data
got = []
node.create_subscription(CompressedImage if compressed else Image,
                         "/camera/left/image_raw" + ("/compressed" if compressed else ""), got.append, qos)
end = time.monotonic() + 12.0
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
print(len(got), flush=True)
"""


def main() -> int:
    width, height, encoding, qos_name, transport = sys.argv[1:6]
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, Image

    sub = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, qos_name, transport], stdout=subprocess.PIPE, text=True)
    w, h = int(width), int(height)
    channels = 1 if encoding == "mono8" else 3
    compressed = transport == "compressed"
    rclpy.init()
    node = rclpy.create_node("delivery_publisher")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE) if qos_name == "reliable" \
        else qos_profile_sensor_data
    pub = node.create_publisher(CompressedImage if compressed else Image,
                                "/camera/left/image_raw" + ("/compressed" if compressed else ""), qos)
    end = time.monotonic() + 15.0
    while pub.get_subscription_count() < 1 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.5)
    # Blocks of 8x8 pixels: about as compressible as a camera image (pure noise would not be).
    noise = np.random.default_rng(0).integers(0, 255, (h // 8 + 1, w // 8 + 1, channels), dtype=np.uint8)
    img = np.ascontiguousarray(np.repeat(np.repeat(noise, 8, 0), 8, 1)[:h, :w])
    for i in range(8):
        if compressed:
            import cv2

            msg = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", img)[1].tobytes())
        else:
            msg = Image(height=h, width=w, encoding=encoding, step=w * channels, data=img.tobytes())
        msg.header.stamp.sec = 1000 + i
        pub.publish(msg)
        time.sleep(0.2)
    size = len(msg.data)
    arrived = sub.communicate(timeout=30)[0].strip()
    print(f"{width}x{height} {encoding}, {qos_name}, {transport} ({size} bytes a message): arrived {arrived} of 8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
