"""runtime.arrival_watch: a topic with publishers and nothing received is reported once per silence."""
from vode_ros.runtime.arrival_watch import ArrivalWatch


def test_said_once_after_the_grace_and_again_after_a_message():
    w = ArrivalWatch(grace_s=5.0)
    assert not w.update(publishers=0, received=0, now=0.0)          # nobody publishes: nothing to say
    assert not w.update(1, 0, 10.0) and not w.update(1, 0, 14.9)      # publishers since 10 s
    assert w.update(1, 0, 15.0) and w.silent                          # 5 s of silence: said once
    assert not w.update(1, 0, 30.0) and w.silent                      # not again while it lasts
    assert not w.update(1, 1, 31.0) and not w.silent                  # an image came
    assert not w.update(1, 1, 35.9) and w.update(1, 1, 36.0)          # a later silence is said again


def test_publishers_gone_resets_the_clock():
    w = ArrivalWatch(grace_s=5.0)
    w.update(1, 0, 0.0)
    w.update(0, 0, 4.0)                                              # the camera went away
    assert not w.update(1, 0, 8.0) and not w.update(1, 0, 12.9) and w.update(1, 0, 13.0)
