"""WebSub (W3C Recommendation), both ways: feeds that name their hubs, a built-in hub that pushes
every change to its subscribers, pings to outside hubs, and subscriptions to the hubs of upstream
feeds whose pushed content is merged like a poll's."""
