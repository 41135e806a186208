-- A step attempt's durable checkpoint (JSON object, e.g. a remote MCP task id): what a
-- resumed attempt picks up instead of calling the tool again. NULL when there is none.
ALTER TABLE steps ADD COLUMN checkpoint TEXT;
