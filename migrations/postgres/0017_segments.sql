-- The segment of its list an issue goes to: typed conditions as JSON (see
-- `audience::segment`), turned into bound SQL parameters when it is counted or sent.
-- NULL is the whole list.
ALTER TABLE issues ADD COLUMN segment TEXT;
