"""Power control for fencing against ipmi_sim, and the in-band path's errors without /dev/ipmi0.

ipmi_sim switches a chassis through an external "chassis_control" program: the harness gives
it one that keeps the power state in a file (``IpmiSim(power=True)``), so the BMC reports
"on", takes Chassis Control "off" over RMCP+, and reports "off" once it is (optionally after
a delay, as a real server takes a while to go down). ipmitool, on the same BMC, is the
independent read-back.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from collectors.ipmi import BmcError, IpmiCollector, local_device_error
from tests.conftest import hotspare
from tests.ipmisim import IpmiSim, dell_like

PASSWORD = "pw-Fence-Secret"  # distinctive, so a leak would show in any message


def start(tmp_path, **kw) -> IpmiSim:
    return IpmiSim(dell_like(), tmp_path / "sim", password=PASSWORD, **kw).start()


def collector(sim: IpmiSim) -> IpmiCollector:
    return IpmiCollector("bmc", "127.0.0.1", sim.port, "admin", PASSWORD)


def ipmitool_power(sim: IpmiSim) -> str:
    out = subprocess.run(
        [*sim.ipmitool_args(), "chassis", "power", "status"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()


def test_power_off_switches_the_chassis_off_and_reads_it_back(tmp_path):
    with start(tmp_path, power=True, power_off_delay=2) as sim:
        c = collector(sim)
        try:
            assert c.power_state() == "on"
            assert ipmitool_power(sim) == "Chassis Power is on"
            assert c.power_off(verify_timeout=30) is True
            assert c.power_state() == "off"
        finally:
            c.close()
        assert ipmitool_power(sim) == "Chassis Power is off"  # another client agrees
        assert sim.chassis_power().startswith("off")
        requests = sim.chassis_requests()
        sent = requests.index("set power 0")
        assert requests.count("set power 0") == 1
        assert "get power" in requests[sent + 1 :]  # read back after the command, not before


def test_a_chassis_that_stays_on_is_not_reported_off(tmp_path):
    with start(tmp_path, power=True, power_off_delay=120) as sim:
        c = collector(sim)
        try:
            assert c.power_off(verify_timeout=1.5) is False
            assert c.power_state() == "on"
        finally:
            c.close()
        assert sim.chassis_requests().count("set power 0") == 1


def test_a_refused_power_off_is_an_error_naming_the_bmc_without_the_password(tmp_path):
    with start(tmp_path, power=True) as sim:
        sim.refuse_power_control()
        c = collector(sim)
        try:
            with pytest.raises(BmcError) as err:
                c.power_off(verify_timeout=5)
            assert c.power_state() == "on"
        finally:
            c.close()
    text = str(err.value)
    assert "BMC 127.0.0.1: power off failed" in text
    assert PASSWORD not in text


def test_power_off_of_a_chassis_already_off_is_confirmed_without_a_command(tmp_path):
    with start(tmp_path, power=True) as sim:
        sim.power_file.write_text("off\n")
        c = collector(sim)
        try:
            assert c.power_state() == "off"
            assert c.power_off(verify_timeout=5) is True
        finally:
            c.close()
        assert "set power 0" not in sim.chassis_requests()


# --- the in-band path ("local", /dev/ipmi0) --------------------------------------------


def test_a_missing_device_is_named_with_what_to_load(tmp_path):
    missing = str(tmp_path / "ipmi0")
    text = local_device_error(missing)
    assert text is not None
    assert text.startswith(f"{missing} does not exist")
    assert "ipmi_si" in text and "ipmi_devintf" in text


def test_a_device_that_is_not_a_character_device_is_refused(tmp_path):
    plain = tmp_path / "ipmi0"
    plain.write_text("")
    assert local_device_error(str(plain)) == (
        f"{plain} is not a character device (an IPMI device node is; see ipmi_devintf)"
    )


def test_a_device_the_agent_cannot_open_says_permission_denied():
    # /dev/null is a character device; the access check is the seam (the tests run as root)
    assert local_device_error("/dev/null") is None
    text = local_device_error("/dev/null", access=lambda path, mode: False)
    assert text is not None and "/dev/null: permission denied" in text


def test_the_local_collector_fails_its_poll_with_that_message(tmp_path):
    c = IpmiCollector("bmc", "local", local_device=str(tmp_path / "ipmi0"))
    with pytest.raises(BmcError) as err:
        c.collect(time.time())
    assert str(err.value).startswith(f"in-band IPMI: {tmp_path / 'ipmi0'} does not exist")
    with pytest.raises(BmcError, match=r"in-band IPMI: .* does not exist"):
        c.power_state()


@pytest.mark.skipif(os.path.exists("/dev/ipmi0"), reason="this machine has an IPMI device")
def test_status_json_reports_the_missing_device(tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'[agent]\nsite = "dc1"\nhost = "h"\nstate_dir = "{tmp_path / "state"}"\n'
        '[[collectors.ipmi]]\nname = "bmc"\naddress = "local"\n'
    )
    out = hotspare("status", "--json", "--config", str(cfg))
    doc = json.loads(out.stdout)
    (entry,) = doc["collectors"]
    assert entry["ok"] is False
    assert "/dev/ipmi0 does not exist" in entry["error"]
    assert "ipmi_devintf" in entry["error"]
