-- The timeline's months: 0 (randomisation) to 24.
select generate_series(0, 24) as month_index
