RUN echo no stage
