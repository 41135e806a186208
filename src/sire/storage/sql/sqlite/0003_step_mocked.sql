-- Whether a step's outcome came from a mock file (`sire run --mock-file`), not its tool.
ALTER TABLE steps ADD COLUMN mocked INTEGER NOT NULL DEFAULT 0;
