"""Live tools for agent suites: runtimes, services, state, seeded faults, the proxy and claim checks.

:class:`ToolEnv` is everything a suite's ``tools:``, ``services:``, ``mcp:`` and ``state:`` sections start
for one run; the agent target (:mod:`evalkit.targets.agent`) opens it and gives each case a
:class:`~evalkit.tools.boundary.CaseTools`.
"""

from evalkit.tools.environment import AgentTask, ToolEndpoint, ToolEnv, open_env

__all__ = ["AgentTask", "ToolEndpoint", "ToolEnv", "open_env"]
