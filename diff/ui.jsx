// The generative UI both servers of the differential harness bundle (langgraph.json `ui`).
export default {
  Greeting: ({ reply }) => <p>{reply}</p>,
};
