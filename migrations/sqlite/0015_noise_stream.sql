-- Which generator drew a trial's gradient noise: 2 = Philox4x32-10 with Box–Muller, each
-- coordinate's draw a function of (seed, run, step, coordinate); 1 = ChaCha8 with a ziggurat, in
-- coordinate order. Results stored before the column existed were all drawn with 1; NULL is a
-- result from a worker that does not report it.
ALTER TABLE results ADD COLUMN noise_stream INTEGER;
UPDATE results SET noise_stream = 1;
