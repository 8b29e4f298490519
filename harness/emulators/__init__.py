"""Loopback emulators of a lab bench (SCPI counter/analysers, serial source firmware) with fault injection."""

from harness.emulators.faults import FAULT_KINDS, Fault, FaultPlan, FaultSpecError, parse_fault
from harness.emulators.model import PREP_STATES, LinkModel, LinkParameters
from harness.emulators.runner import (
    ANALYZER_COMMANDS,
    COUNTER_COMMANDS,
    SOURCE_COMMANDS,
    EmulatorSet,
    ThreadedEmulators,
)
from harness.emulators.servers import FirmwareEmulator, LineServer, ScpiEmulator, SourceState

__all__ = [
    "ANALYZER_COMMANDS",
    "COUNTER_COMMANDS",
    "FAULT_KINDS",
    "PREP_STATES",
    "SOURCE_COMMANDS",
    "EmulatorSet",
    "Fault",
    "FaultPlan",
    "FaultSpecError",
    "FirmwareEmulator",
    "LineServer",
    "LinkModel",
    "LinkParameters",
    "ScpiEmulator",
    "SourceState",
    "ThreadedEmulators",
    "parse_fault",
]
