"""Dataset tools: look at a dataset (inspect), trust it (verify), fix it (takedown) and take it elsewhere (export).

Each tool is one function that the CLI (`flows/commands/tools.py`), the flows and the tests all call.
"""

from pipeline.tools._read import ToolError
from pipeline.tools.export import FORMATS as EXPORT_FORMATS
from pipeline.tools.export import ExportConfig, export_dataset
from pipeline.tools.inspect import InspectReport, ShardSummary, inspect_dataset
from pipeline.tools.takedown import TAKEDOWN_LOG, TakedownRequest, TakedownResult, takedown
from pipeline.tools.verify import Problem, VerifyReport, verify_dataset

__all__ = [
    "EXPORT_FORMATS",
    "ExportConfig",
    "InspectReport",
    "Problem",
    "ShardSummary",
    "TAKEDOWN_LOG",
    "TakedownRequest",
    "TakedownResult",
    "ToolError",
    "VerifyReport",
    "export_dataset",
    "inspect_dataset",
    "takedown",
    "verify_dataset",
]
