-- The labels a worker was started with (routing: tasks' requires), shown on the workers page.
ALTER TABLE workers ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
