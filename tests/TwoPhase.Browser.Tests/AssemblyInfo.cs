using Xunit;

// Each test starts three services (and one a browser): run them one at a time, so timings stay honest.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
