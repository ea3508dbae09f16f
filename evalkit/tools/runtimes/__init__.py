"""Tool runtimes: ``http`` (a route of a service), ``mcp`` (a tool of an MCP server), ``python`` (a function).

Each has ``async call(tool, arguments, timeout_s) -> ToolResponse`` and never raises for a tool's own
failure: a refused request, a non-JSON answer, an exception in a python tool are recorded outcomes.
"""
