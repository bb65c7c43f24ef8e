-- The questionnaire time points (months after randomisation) and their windows in days around
-- the target date r + k months: baseline r - 60 .. r + 14, the others target +/- 45 days.
select
    timepoint_months,
    window_days_before,
    window_days_after
from (
    values
    (0, 60, 14),
    (6, 45, 45),
    (12, 45, 45),
    (24, 45, 45)
) as timepoints (timepoint_months, window_days_before, window_days_after)
