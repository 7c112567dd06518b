"""WebSub (W3C Recommendation): feeds that advertise their hubs, a built-in hub that pushes
every change to its subscribers, and pings to outside hubs."""
