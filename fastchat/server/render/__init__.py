"""Every client-visible line, rendered in one place: ``lines`` (what users see each other do),
``replies`` (numerics and bursts), ``variants`` (a line's tagged forms, once per variant) and
``dates``. Renders what it is given; decides nothing."""
