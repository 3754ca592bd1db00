import pytest

from app.settings import Settings, SettingsError


def test_defaults_are_the_documented_ones():
    s = Settings.from_env({})
    assert (s.broker, s.partitions, s.window_size_s, s.retention_s) == (
        "kafka://127.0.0.1:9092", 8, 60, 86400)
    assert s.web_bind == "127.0.0.1" and s.advertised_host == "127.0.0.1"


def test_every_field_reads_its_own_variable():
    s = Settings.from_env({"ORDERSTATS_PARTITIONS": "4", "ORDERSTATS_WINDOW_SIZE_S": "300",
                           "ORDERSTATS_WEB_BIND": "0.0.0.0", "ORDERSTATS_WEB_HOST": "w1.lan"})
    assert (s.partitions, s.window_size_s, s.advertised_host) == (4, 300, "w1.lan")
    assert Settings.from_env({"ORDERSTATS_WEB_BIND": "0.0.0.0"}).advertised_host == "127.0.0.1"


@pytest.mark.parametrize("env, message", [
    ({"ORDERSTATS_PARTITIONS": "eight"}, "ORDERSTATS_PARTITIONS='eight' is not a valid int"),
    ({"ORDERSTATS_PARTITIONS": "0"}, "between 1 and 10000"),
    ({"ORDERSTATS_WEB_PORT": "70000"}, "must be a TCP port"),
    ({"ORDERSTATS_RETENTION_S": "30"}, "at least one window"),
    ({"ORDERSTATS_SESSION_TIMEOUT_S": "1"}, "6..300"),
])
def test_bad_values_are_refused_with_the_variable_name(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
